"""The model endpoints, as adapters on the one pipeline (``floopy.pipeline``): each says how
its body parses into calls to a provider and in which envelope it answers errors. None of
them repeats the stage order."""
