"""Items of the params.yaml lists that declare objects in order (`cnn.layers`, `knn.transforms`):
a name, or a one-key mapping from a name to its keyword arguments."""

from digits.errors import DigitsError


def parse_item(index, item, known, noun):
    """(name, arguments) of item `index`; `known` holds the allowed names, `noun` ("layer", "step") names an item.

    Raises a DigitsError naming the item when it has another form, an unknown name or arguments
    that are not a mapping.
    """
    if isinstance(item, str):
        name, args = item, {}
    elif isinstance(item, dict) and len(item) == 1:
        (name, args), = item.items()
    else:
        raise DigitsError(f"{noun} {index}: expected a {noun} name or a one-key mapping {{name: {{arguments}}}},"
                          f" got {item!r}")
    if name not in known:
        raise DigitsError(f"{noun} {index}: unknown {noun} {name!r}, expected one of {', '.join(known)}")
    if not isinstance(args, dict):
        raise DigitsError(f"{noun} {index} ({name}): arguments must be a mapping, got {args!r}")
    return name, args


def check_arguments(index, name, args, allowed, required, noun):
    """Refuse `args` holding a name not in `allowed` or lacking one in `required`, naming what item `index` takes."""
    unknown = [arg for arg in args if arg not in allowed]
    missing = [arg for arg in required if arg not in args]
    if unknown or missing:
        problem = f"unknown arguments {unknown}" if unknown else f"missing arguments {missing}"
        raise DigitsError(f"{noun} {index} ({name}): {problem}; it takes {', '.join(allowed) or 'none'}")
