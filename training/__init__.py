"""Treelens training: tokenizer, MLM pretraining, multi-label finetuning, evaluation and
ONNX export of the model bundle that ships in model/assets/default/ (``treelens-train``)."""
