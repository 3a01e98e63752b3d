"""Make the sample CSVs in this folder, reproducibly (run: make sample-data).

Each file is drawn from a known model with numpy's PCG64 generator and a fixed seed, so running
this script again rewrites byte-identical files.

- admissions.csv (bernoulli): 600 applicants; admitted yes/no from gpa, test_score, essay_rating.
- commute.csv (categorical): 1500 commuters; mode bike/bus/car/walk from distance_km, income_k, age.
- house_prices.csv (gaussian): 800 sales; price_k from area_m2, bedrooms, age_years.
- clinic_visits.csv (poisson, negbin): 1000 patients; visits (a count, overdispersed: negative
  binomial with alpha 0.6) in months_enrolled (the exposure) from age, chronic (0/1), insured (yes/no).
- claims.csv (gamma): 900 insurance claims; amount (positive, gamma with shape 2.5) from
  driver_age, vehicle_value_k and region (north/south/west).
- satisfaction.csv (ordinal): 700 customers; satisfaction low/medium/high (proportional odds) from
  wait_min, support_calls and member (yes/no). Drawn from a generator of its own, so adding it left
  the files above unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def write(name: str, columns: dict[str, np.ndarray], formats: dict[str, str]) -> None:
    names = list(columns)
    lines = [",".join(names)]
    n = len(next(iter(columns.values())))
    for i in range(n):
        lines.append(",".join(format(columns[c][i], formats.get(c, "")) for c in names))
    (HERE / name).write_text("\n".join(lines) + "\n")


def admissions(rng: np.random.Generator) -> None:
    n = 600
    gpa = np.clip(rng.normal(3.2, 0.4, n), 2.0, 4.0).round(2)
    test_score = np.clip(rng.normal(155, 8, n), 130, 180).round()
    essay = rng.integers(1, 6, n)
    eta = -21.0 + 2.2 * gpa + 0.09 * test_score + 0.35 * essay
    admitted = np.where(rng.random(n) < 1 / (1 + np.exp(-eta)), "yes", "no")
    write("admissions.csv", {"gpa": gpa, "test_score": test_score, "essay_rating": essay, "admitted": admitted},
          {"gpa": ".2f", "test_score": ".0f"})


def commute(rng: np.random.Generator) -> None:
    n = 1500
    distance = np.round(rng.gamma(2.0, 4.0, n), 1)
    income = np.round(rng.lognormal(3.8, 0.4, n), 1)
    age = rng.integers(18, 70, n)
    # log-odds against the reference class 'bike': bus, car, walk
    coef = np.array([
        [-1.0, 0.20, 0.00, 0.010],
        [-3.0, 0.25, 0.03, 0.030],
        [2.5, -0.90, 0.00, 0.005],
    ])
    X = np.column_stack([np.ones(n), distance, income, age])
    eta = np.column_stack([np.zeros(n), X @ coef.T])
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    codes = (P.cumsum(axis=1)[:, :-1] < rng.random((n, 1))).sum(axis=1)
    mode = np.array(["bike", "bus", "car", "walk"])[codes]
    write("commute.csv", {"distance_km": distance, "income_k": income, "age": age, "mode": mode},
          {"distance_km": ".1f", "income_k": ".1f"})


def house_prices(rng: np.random.Generator) -> None:
    n = 800
    area = np.round(rng.normal(110, 30, n).clip(35, 260), 1)
    bedrooms = np.clip(np.round(area / 35 + rng.normal(0, 0.7, n)), 1, 7).astype(int)
    age = rng.integers(0, 80, n)
    price = 40 + 2.1 * area + 12.0 * bedrooms - 0.9 * age + rng.normal(0, 25, n)
    write("house_prices.csv", {"area_m2": area, "bedrooms": bedrooms, "age_years": age, "price_k": price.round(1)},
          {"area_m2": ".1f", "price_k": ".1f"})


def clinic_visits(rng: np.random.Generator) -> None:
    n = 1000
    age = rng.integers(18, 85, n)
    chronic = (rng.random(n) < 0.3).astype(int)
    insured = np.where(rng.random(n) < 0.7, "yes", "no")
    months = rng.integers(1, 25, n)
    mu = months * np.exp(-2.2 + 0.012 * age + 0.8 * chronic + 0.35 * (insured == "yes"))
    alpha = 0.6
    visits = rng.poisson(rng.gamma(1.0 / alpha, alpha * mu))
    write("clinic_visits.csv", {"age": age, "chronic": chronic, "insured": insured, "months_enrolled": months,
                                "visits": visits}, {})


def claims(rng: np.random.Generator) -> None:
    n = 900
    driver_age = rng.integers(18, 80, n)
    value = np.round(rng.lognormal(3.0, 0.5, n), 1)
    region = rng.choice(np.array(["north", "south", "west"]), n)
    mu = np.exp(6.0 - 0.008 * driver_age + 0.015 * value + 0.2 * (region == "south") - 0.1 * (region == "west"))
    shape = 2.5
    amount = np.round(rng.gamma(shape, mu / shape), 2)
    write("claims.csv", {"driver_age": driver_age, "vehicle_value_k": value, "region": region, "amount": amount},
          {"vehicle_value_k": ".1f", "amount": ".2f"})


def satisfaction(rng: np.random.Generator) -> None:
    n = 700
    wait = np.round(rng.gamma(2.0, 6.0, n), 1)
    calls = rng.poisson(1.2, n)
    member = np.where(rng.random(n) < 0.4, "yes", "no")
    eta = -0.09 * wait - 0.45 * calls + 1.1 * (member == "yes")
    cut = np.array([-2.4, -0.6])  # P(y <= j) = sigmoid(cut_j - eta)
    codes = ((eta + rng.logistic(size=n))[:, None] > cut).sum(axis=1)
    level = np.array(["low", "medium", "high"])[codes]
    write("satisfaction.csv", {"wait_min": wait, "support_calls": calls, "member": member, "satisfaction": level},
          {"wait_min": ".1f"})


def main() -> None:
    rng = np.random.default_rng(20261124)
    admissions(rng)
    commute(rng)
    house_prices(rng)
    clinic_visits(rng)
    claims(rng)
    satisfaction(np.random.default_rng(20261129))


if __name__ == "__main__":
    main()
