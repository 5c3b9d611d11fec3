"""Pure rules of the product: no I/O, testable without a database."""
