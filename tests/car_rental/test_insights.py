"""Insight queries run by DuckDB over known analytics tables, with Athena-style CSV results."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from rental_analytics.car_rental.contract import INSIGHT_QUERIES
from rental_analytics.car_rental.insights import neutral_cell, neutralised_csv, query_text, run_insights


def _write_tables(root: Path, user_first_name: str = "Kofi") -> Path:
    tables = {
        "location_performance": """SELECT * FROM (VALUES
            ('L1','Airport','Accra','GA',100.00::DECIMAL(18,2),2::BIGINT,50.00::DECIMAL(10,2),60.00::DECIMAL(12,2),
             40.00::DECIMAL(12,2),2::BIGINT,10.0,0.5),
            ('L2','Harbor','Tema','GA',100.00,1,100.00,100.00,100.00,1,5.0,0.25),
            ('L0','Depot','Ho','VR',300.00,3,100.00,100.00,100.00,1,1.0,NULL))
            t(location_id,location_name,city,state,total_revenue,transaction_count,avg_transaction_amount,
              max_transaction_amount,min_transaction_amount,unique_vehicles,total_rental_hours,utilization_rate)""",
        "vehicle_type_performance": """SELECT * FROM (VALUES ('SUV',2::BIGINT,10.00::DECIMAL(18,2),5.00,1.0,1.0,1.0,1::BIGINT),
            ('Sedan',5,1.00,0.20,1.0,1.0,1.0,2)) t(vehicle_type,rental_count,total_revenue,avg_transaction_amount,
            avg_rental_duration,max_rental_duration,min_rental_duration,unique_vehicles)""",
        "user_metrics": """SELECT * FROM (VALUES ('U2',$first_name,'Owusu','k@x',50.00::DECIMAL(18,2),1::BIGINT),
            ('U1','Ama','Mensah','a@x',50.00,2)) t(user_id,first_name,last_name,email,total_spent,rental_count)""",
        "daily_metrics": """SELECT * FROM (VALUES (DATE '2024-06-02',20.00::DECIMAL(18,2),1::BIGINT),
            (DATE '2024-06-01',10.00,2)) t(rental_date,total_revenue,transaction_count)""",
    }
    with duckdb.connect() as connection:
        for name, sql in tables.items():
            (root / name).mkdir(parents=True)
            literal = "'" + user_first_name.replace("'", "''") + "'"
            connection.sql(sql.replace("$first_name", literal)).write_parquet(str(root / name / "part-0.parquet"))
    return root


@pytest.fixture
def analytics(tmp_path: Path) -> Path:
    return _write_tables(tmp_path / "analytics")


def test_every_query_has_its_sql_file():
    for name in INSIGHT_QUERIES:
        assert query_text(name).lstrip().startswith("--")


def test_queries_answer_with_the_contracts_orderings(analytics: Path, tmp_path: Path):
    results = run_insights(analytics, tmp_path / "insights")
    assert [r["location_id"] for r in results["top_revenue_locations"]] == ["L0", "L1", "L2"]
    assert [r["vehicle_type"] for r in results["most_rented_vehicle_types"]] == ["Sedan", "SUV"]
    assert [r["user_id"] for r in results["top_spending_users"]] == ["U1", "U2"]
    assert [str(r["rental_date"]) for r in results["daily_revenue_trend"]] == ["2024-06-01", "2024-06-02"]
    assert [r["location_id"] for r in results["location_utilization"]] == ["L1", "L2", "L0"]

    with (tmp_path / "insights" / "top_spending_users.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["user_id", "first_name", "last_name", "total_spent", "rental_count"],
        ["U1", "Ama", "Mensah", "50.00", "2"],
        ["U2", "Kofi", "Owusu", "50.00", "1"],
    ]
    assert (tmp_path / "insights" / "top_spending_users.csv").read_text().startswith('"user_id","first_name"')


def test_cells_that_would_run_as_spreadsheet_formulas_are_neutralised(tmp_path: Path):
    hostile = '=HYPERLINK("http://example.invalid","x")'
    analytics = _write_tables(tmp_path / "it's analytics", user_first_name=hostile)  # a quote in the path too
    run_insights(analytics, tmp_path / "insights")

    with (tmp_path / "insights" / "top_spending_users.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[2] == ["U2", "'" + hostile, "Owusu", "50.00", "1"]


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=SUM(A1:A2)", "'=SUM(A1:A2)"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("@SUM(1)", "'@SUM(1)"),
        ("-2+3", "'-2+3"),
        ("\tTab", "'\tTab"),
        ("-12.50", "-12.50"),
        ("+1e3", "+1e3"),
        ("Ama", "Ama"),
        (None, ""),
    ],
)
def test_neutral_cells(cell: object, shown: str):
    assert neutral_cell(cell) == shown


def test_athena_results_are_neutralised_and_otherwise_unchanged():
    athena = '"user_id","first_name"\n"U1","Ama"\n"U2","@SUM(1)"\n'
    assert neutralised_csv(athena) == '"user_id","first_name"\n"U1","Ama"\n"U2","\'@SUM(1)"\n'
