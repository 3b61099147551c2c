"""Reading a network's inner layers: find its convolutions, build models that stop there.

The pipeline's models nest: the end-to-end model is image -> extractor -> head, and the
extractor is image -> preprocessing -> keras.applications backbone -> features. A layer is
therefore named by its path of layer names from the outer model down, e.g.
("vgg16_extractor", "vgg16", "block5_conv3"). Intermediate models are built with the
functional API from the networks' own layers (`keras.Model(inputs, layer.output)`), never by
re-implementing them.
"""

from __future__ import annotations

import keras

from facetl.core.errors import FacetlError

LayerPath = tuple[str, ...]
CONV_TYPES = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)


def conv_layer_paths(model: keras.Model) -> list[LayerPath]:
    """The paths of every 2-D convolution, in the order the layers run, nested models included."""
    found: list[LayerPath] = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += [(layer.name, *path) for path in conv_layer_paths(layer)]
        elif isinstance(layer, CONV_TYPES):
            found.append((layer.name,))
    return found


def resolve_conv_layer(model: keras.Model, which: str) -> LayerPath:
    """`first`, `last`, or a convolution's name (at any depth) -> its path."""
    convs = conv_layer_paths(model)
    if not convs:
        raise FacetlError(f"model {model.name!r} has no convolution layer to show")
    if which in ("first", "last"):
        return convs[0] if which == "first" else convs[-1]
    matches = [path for path in convs if path[-1] == which]
    if not matches:
        raise FacetlError(
            f"{model.name!r} has no convolution layer named {which!r}; use `first`, `last` or "
            f"one of its convolution layers: {', '.join(path[-1] for path in convs)}"
        )
    return matches[0]


def intermediate_model(model: keras.Model, path: LayerPath,
                       with_output: bool = False) -> keras.Model:
    """`model`'s input -> the output of the layer at `path` (and `model`'s own output too).

    With `with_output`, both come from one forward pass, so the gradient of the output with
    respect to the inner feature map (Grad-CAM) flows through every layer in between.
    Inside the innermost model any graph works; the levels above it must be chains of
    single-input layers, as the pipeline's models are (a merge layer fails loudly here).
    """
    name, *rest = path
    try:
        layer = model.get_layer(name)
    except ValueError as exc:
        raise FacetlError(f"model {model.name!r} has no layer {name!r} (on the way to "
                          f"{'/'.join(path)}); was it trained with another backbone?") from exc
    if not rest:
        outputs = [layer.output, *model.outputs] if with_output else layer.output
        return keras.Model(model.inputs, outputs, name=f"{model.name}_to_{name}")
    [source] = model.inputs
    inputs = keras.Input(source.shape[1:], dtype=source.dtype)
    x, target = inputs, None
    for step in model.layers:
        if isinstance(step, keras.layers.InputLayer):
            continue
        if step is not layer:
            x = step(x)
        elif with_output:
            target, x = intermediate_model(layer, tuple(rest), with_output=True)(x)
        else:
            target = intermediate_model(layer, tuple(rest))(x)
            break
    return keras.Model(inputs, [target, x] if with_output else target,
                       name=f"{model.name}_to_{path[-1]}")
