"""Treelens model library: what the classifier sees (project tree -> model text) and says (labels).

Training and the daemon both go through this package, so the text a model was trained
on is byte for byte the text it sees at run time. Nothing here imports torch.
"""
