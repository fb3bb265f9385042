"""Treelens daemon: workspace scanning and watching, the feedback store, the LSP server
(``python -m treelens.daemon``) and the ``treelens`` command line."""
