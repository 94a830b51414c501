"""HTTP handlers, one module per endpoint family. Each takes the worker, the request
context, the RSGI scope and protocol, and answers (or raises a FloopyError)."""
