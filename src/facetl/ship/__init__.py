"""A trained model leaving the project: exported files with their manifest and model card
(`facetl export`), and the runtimes that run those files behind facetl's own front end
(`facetl predict --runtime onnx`)."""
