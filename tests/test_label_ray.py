"""`edgemod label --engine ray` on a local Ray cluster: same labels as the single process, and a run
killed midway scores only the missing chunks when restarted.

The teacher is a real offline one (TF-IDF + logistic regression on SMS spam, served by the
`sklearn` kind): Ray actors run in other processes, where tests/conftest.py's test teachers are
not registered, but every process can load a joblib file."""
import joblib
import pandas as pd
import pytest

pytest.importorskip("ray")

from edgemod.catalog import load_split
from edgemod.recipe import load_recipe
from edgemod.training import label, label_shards

CHUNK = 32


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train = load_split("sms_spam:train")
    model = make_pipeline(TfidfVectorizer(min_df=2), LogisticRegression(max_iter=500))
    path = tmp_path_factory.mktemp("teacher") / "sms_tfidf.joblib"
    joblib.dump(model.fit(train["text"], train["label"]), path)
    return load_recipe("recipes/quickstart.yaml", [
        "data.max_items_per_split=100", f"teachers=[{{name: tfidf, kind: sklearn, path: '{path}'}}]"])


@pytest.fixture(scope="module")
def local_labels(recipe, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    label.run(recipe, out, chunk_size=CHUNK)
    return pd.read_parquet(out / label.LABELS_FILE)


def _shards(out):
    return sorted(p.name for p in (out / "shards").glob("*/part-*.parquet"))


def test_ray_labels_equal_the_single_process_labels(recipe, local_labels, local_ray, tmp_path):
    manifest = label.run(recipe, tmp_path, chunk_size=CHUNK, engine="ray", workers=2)
    ray_labels = pd.read_parquet(tmp_path / label.LABELS_FILE)
    pd.testing.assert_frame_equal(ray_labels, local_labels)
    assert manifest.metrics["items"] == len(local_labels) == 300
    chunks = -(-len(local_labels) // CHUNK)
    assert _shards(tmp_path) == [f"part-{i:05d}.parquet" for i in range(chunks)]  # same files as local


def test_a_killed_ray_run_resumes_scoring_only_missing_chunks(recipe, local_labels, local_ray, tmp_path,
                                                              monkeypatch):
    write_shard, written = label_shards._write_shard, []

    def crash_after_three(path, keys, probs, labels):
        if len(written) == 3:
            raise KeyboardInterrupt  # what Ctrl-C or a kill does to the driver mid-run
        write_shard(path, keys, probs, labels)
        written.append(len(keys))

    monkeypatch.setattr(label_shards, "_write_shard", crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        label.run(recipe, tmp_path, chunk_size=CHUNK, engine="ray", workers=2)
    assert len(_shards(tmp_path)) == 3 and not (tmp_path / label.LABELS_FILE).exists()

    rescored = []
    monkeypatch.setattr(label_shards, "_write_shard",
                        lambda path, keys, probs, labels: (write_shard(path, keys, probs, labels),
                                                           rescored.append(len(keys))))
    label.run(recipe, tmp_path, chunk_size=CHUNK, engine="ray", workers=2)
    assert sum(rescored) == len(local_labels) - sum(written)  # only the missing items were scored
    assert len(_shards(tmp_path)) == 3 + len(rescored)  # no finished shard overwritten
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / label.LABELS_FILE), local_labels)


def test_more_workers_than_the_cluster_has_cpus_is_an_error(recipe, local_ray, tmp_path):
    from edgemod.errors import EdgemodError

    with pytest.raises(EdgemodError, match="--workers 5"):
        label.run(recipe, tmp_path, chunk_size=CHUNK, engine="ray", workers=5)


def test_an_actor_whose_teacher_differs_from_the_drivers_stops_the_run(recipe, local_ray, tmp_path):
    from edgemod.errors import EdgemodError
    from edgemod.training.items import collect_items
    from edgemod.training.label_ray import score_with_ray

    items = collect_items(recipe)
    with pytest.raises(EdgemodError, match="not the driver's") as raised:
        score_with_ray(recipe.teachers[0], recipe, "tfidf", items, tmp_path, CHUNK, 1, None,
                       identity="sklearn:another-model")
    assert "same model files" in raised.value.hint
    assert not list(tmp_path.glob("part-*"))
