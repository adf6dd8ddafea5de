"""Reference baselines a distilled student must beat: TF-IDF (word 1-2 + char 2-5 grams) + logistic
regression trained on the recipe's gold train split."""
from __future__ import annotations

import time

import numpy as np

from edgemod.catalog import load_split
from edgemod.recipe import Recipe
from edgemod.training.metrics import classification_report


def tfidf_logreg(recipe: Recipe, cs: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0), seed: int = 0) -> dict:
    """Fit one model per C on train, keep the best on validation, report validation and test."""
    fits = [_fit_tfidf_logreg(recipe, c, seed) for c in cs]
    best = max(fits, key=lambda fit: fit["validation"]["macro_f1"])
    best["validation_macro_f1_by_C"] = {fit["C"]: fit["validation"]["macro_f1"] for fit in fits}
    return best


def _fit_tfidf_logreg(recipe: Recipe, c: float, seed: int) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, make_pipeline

    started = time.time()
    cap = recipe.data.max_items_per_split
    train = load_split(recipe.data.train, max_items=cap)
    features = FeatureUnion([
        ("word", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)),
    ])
    model = make_pipeline(features, LogisticRegression(C=c, max_iter=2000, random_state=seed))
    model.fit(train["text"], train["label"])
    order = [list(model.classes_).index(label) for label in recipe.labels]
    report = {"model": "tfidf(word1-2+char2-5)+logreg", "C": c}
    for role in ("validation", "test"):
        frame = load_split(getattr(recipe.data, role), max_items=cap)
        probs = np.asarray(model.predict_proba(frame["text"]))[:, order]
        report[role] = classification_report(frame["label"].tolist(), probs, recipe.labels)
    report["seconds"] = round(time.time() - started, 1)
    return report
