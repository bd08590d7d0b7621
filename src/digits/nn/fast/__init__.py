"""Where digits.nn is fast: nothing here changes a result, only how quickly it is reached (tests compare
each piece with a plain reference).

    conv      im2col, FFT and Winograd convolution in (H, W, N, C) order, and the cost model choosing one
    parallel  large products cut into one piece per core, with BLAS held to one thread
    reorder   a ReLU before a MaxPool2d runs after it, on a quarter of the values
"""
