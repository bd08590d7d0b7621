"""digits: a reproducible pipeline for Kaggle's Digit Recognizer (MNIST, 28x28 grey digits)."""
