"""The learning-curve driver's bookkeeping: its CSV, its plateau rule and its figure."""
from dirac_demo.train.curve import append, plateaued, plot_series, read_rows

FIELDS = ["step", "first_db", "last_db", "last_swd_ratio", "eval_seconds"]


def _rows(ratios: dict[int, float]) -> list[dict]:
    return [{"step": str(s), "first_db": "0.7", "last_db": "-0.3", "last_swd_ratio": str(r), "eval_seconds": "30"}
            for s, r in ratios.items()]


def test_the_plateau_rule_needs_a_point_1000_steps_back_and_a_fall_of_min_fall_per_1000():
    assert not plateaued(_rows({0: 0.73, 500: 0.70}), 0.01)                  # nothing 1000 steps back yet
    assert not plateaued(_rows({0: 0.73, 500: 0.70, 1000: 0.68}), 0.01)      # fell 0.05 per 1000
    assert plateaued(_rows({0: 0.73, 500: 0.70, 1000: 0.725}), 0.01)         # fell 0.005
    assert plateaued(_rows({0: 0.70, 1000: 0.71}), 0.01)                     # rose
    assert not plateaued(_rows({0: 0.70, 1000: 0.71}), -0.02)                # a rise allowed by a negative bound


def test_rows_round_trip_through_the_csv_and_plot(tmp_path, capsys):
    path = tmp_path / "curve.csv"
    for row in _rows({100: 0.7, 600: 0.65}):
        append(path, row, FIELDS)
    rows = read_rows(path)
    assert [r["step"] for r in rows] == ["100", "600"] and rows[1]["last_swd_ratio"] == "0.65"
    assert "step 600" in capsys.readouterr().out
    plot_series(rows, tmp_path / "curve.png", "test", {"avif": ""})
    assert (tmp_path / "curve.png").stat().st_size > 1000
    assert read_rows(tmp_path / "absent.csv") == []
