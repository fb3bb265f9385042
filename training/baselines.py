"""The two baselines the model must beat, computed in the same evaluate run.

(a) ``rules``: hand-written rules on the deterministic evidence ``model/`` already
    computes (technologies from dependencies and marker files, languages, manifests,
    well-known folder names). No learning: what a careful regex could do.
(b) ``tfidf``: TF-IDF over the model text's tokens (the same tokenizer) with one
    logistic regression per label (scikit-learn), fit on the train split with
    thresholds tuned on validation, exactly like the model.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from tokenizers import Tokenizer

from treelens.model.input import Analysis
from treelens.model.labels import LABELS, UNTUNED_THRESHOLD
from treelens.training.metrics import apply_thresholds, inner_folds, tune_thresholds

SERVER = {
    "django", "flask", "fastapi", "pyramid", "express", "koa", "nestjs", "spring", "rails", "sinatra",
    "laravel", "symfony", "aspnet", "gin", "echo", "fiber", "gorilla", "actix", "axum", "rocket",
    "phoenix", "ktor", "celery", "wordpress", "nextjs", "nuxt",
}  # fmt: skip
API = {
    "graphql",
    "grpc",
    "openapi",
    "fastapi",
    "nestjs",
    "express",
    "koa",
    "gin",
    "echo",
    "fiber",
    "actix",
    "axum",
}
WEB_UI = {
    "react",
    "vue",
    "angular",
    "angularjs",
    "svelte",
    "jquery",
    "nextjs",
    "nuxt",
    "electron",
    "tauri",
    "ionic",
}
MOBILE = {"android", "ios", "flutter", "react-native", "ionic", "capacitor", "cordova"}
DESKTOP = {"electron", "tauri", "qt", "gtk", "wpf", "avalonia", "javafx", "pygame", "godot", "unity"}
CLI = {"click", "cobra", "clap", "commander"}
IAC = {
    "terraform",
    "kubernetes",
    "helm",
    "ansible",
    "cloudformation",
    "pulumi",
    "aws-cdk",
    "docker-compose",
    "serverless",
}
LIBRARY_MANIFESTS = ("setup.py", "setup.cfg", "pyproject.toml", "Cargo.toml", ".gemspec", "Package.swift")
WEB_LANGUAGES = {"html", "css"}


def rules_labels(analysis: Analysis) -> list[int]:
    """0/1 per label in LABELS order from technologies, languages and folder names."""
    tech = set(analysis.technologies)
    languages = set(analysis.languages)
    paths = analysis.project_paths
    folders = {part for p in paths for part in p.split("/")[:-1]}
    names = {p.rsplit("/", 1)[-1] for p in paths}
    backend = bool(tech & SERVER)
    found = {
        "backend": backend,
        "frontend": bool(tech & WEB_UI) or (bool(languages & WEB_LANGUAGES) and "javascript" in languages),
        "mobile": bool(tech & MOBILE),
        "has_api": bool(tech & API)
        or (backend and bool(folders & {"api", "routes", "controllers", "handlers"})),
        "desktop": bool(tech & DESKTOP),
        "cli": bool(tech & CLI) or bool(folders & {"cmd", "bin", "cli"}) or "__main__.py" in names,
        "library": not backend
        and not (tech & (WEB_UI | MOBILE | DESKTOP))
        and any(n.endswith(LIBRARY_MANIFESTS) for n in names),
        "iac": bool(tech & IAC),
    }
    return [int(found[name]) for name in LABELS]


class TfidfBaseline:
    """TF-IDF over model-text tokens + one-vs-rest logistic regression."""

    def __init__(self, tokenizer: Tokenizer, seed: int = 0) -> None:
        self.tokenizer = tokenizer
        self.vectorizer = TfidfVectorizer(
            analyzer=self._tokens, ngram_range=(1, 1), sublinear_tf=True, min_df=2, dtype=np.float32
        )
        self.model = OneVsRestClassifier(
            LogisticRegression(C=4.0, class_weight="balanced", max_iter=5000, random_state=seed)
        )
        self.seed = seed
        self.thresholds = [UNTUNED_THRESHOLD] * len(LABELS)
        self.out_of_fold_probabilities = np.zeros((0, len(LABELS)), dtype=np.float32)

    def _tokens(self, text: str) -> list[str]:
        tokens = self.tokenizer.encode(text, add_special_tokens=False).tokens
        return tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]

    def fit(self, texts: Sequence[str], y: np.ndarray, folds: int = 5) -> None:
        """Tune thresholds on out-of-fold probabilities over ``texts`` (kept as
        ``out_of_fold_probabilities``), then fit on all of them: the wide path's treatment
        (``WidePath.fit_out_of_fold``), so the comparison stays like for like."""
        self.out_of_fold_probabilities = np.zeros(y.shape, dtype=np.float32)
        for fit_on, score in inner_folds(len(texts), folds, self.seed):
            self._fit([texts[i] for i in fit_on], y[fit_on])
            self.out_of_fold_probabilities[score] = self.probabilities([texts[i] for i in score])
        tuned = tune_thresholds(y, self.out_of_fold_probabilities)
        self.thresholds = [tuned[name] for name in LABELS]
        self._fit(texts, y)

    def _fit(self, texts: Sequence[str], y: np.ndarray) -> None:
        self.model.fit(self.vectorizer.fit_transform(texts), y)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.predict_proba(self.vectorizer.transform(texts))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return apply_thresholds(self.probabilities(texts), self.thresholds)
