"""Image <-> real bytes: the ``.drc`` container, the JPEG and neural base codecs, the post-filter
and the neural codec's encoder-side refinement."""
