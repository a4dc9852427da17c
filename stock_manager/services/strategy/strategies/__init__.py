"""Strategies that come with the product, each one implementation of the port (``port.Strategy``)."""
