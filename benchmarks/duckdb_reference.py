"""An independent DuckDB implementation of the car-rental contract's four tables, for checks and timing.

It reads the generator's files (canonical headers, no aliases) and applies the row rules in SQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

REFERENCE_SQL = """
CREATE TEMP TABLE tx AS
SELECT DISTINCT trim(rental_id) rental_id, trim(user_id) user_id, trim(vehicle_id) vehicle_id,
       trim(rental_start_time) st, trim(rental_end_time) et, trim(pickup_location) pickup_location,
       trim(dropoff_location) dropoff_location, trim(total_amount) amount_text
FROM read_csv('{batch}/rental_transactions.csv*', all_varchar = true, header = true);

CREATE TEMP TABLE users AS
SELECT * FROM (SELECT DISTINCT trim(user_id) user_id, trim(first_name) first_name, trim(last_name) last_name,
                      trim(email) email, trim(phone_number) p, trim(driver_license_number) d,
                      trim(driver_license_expiry) x, trim(creation_date) c, trim(is_active) a
               FROM read_csv('{batch}/users.csv*', all_varchar = true, header = true))
QUALIFY user_id <> '' AND count(*) OVER (PARTITION BY user_id) = 1;

CREATE TEMP TABLE vehicles AS
SELECT * FROM (SELECT DISTINCT * FROM read_csv('{batch}/vehicles.csv*', all_varchar = true,
               header = true))
QUALIFY trim(vehicle_id) <> '' AND count(*) OVER (PARTITION BY trim(vehicle_id)) = 1;

CREATE TEMP TABLE locations AS
SELECT * FROM (SELECT DISTINCT * FROM read_csv('{batch}/locations.csv*', all_varchar = true,
               header = true))
QUALIFY trim(location_id) <> '' AND count(*) OVER (PARTITION BY trim(location_id)) = 1;

CREATE TEMP TABLE valid AS
WITH parsed AS (
  SELECT *, count(*) OVER (PARTITION BY rental_id) AS copies,
         try_strptime(replace(st, 'T', ' '), ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M']) AS s,
         try_strptime(replace(et, 'T', ' '), ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M']) AS e,
         CASE WHEN regexp_full_match(amount_text, '[+-]?(\\d+(\\.\\d*)?|\\.\\d+)')
              THEN TRY_CAST(amount_text AS DECIMAL(12, 2)) END AS amount
  FROM tx
)
SELECT rental_id, user_id, vehicle_id, pickup_location, s AS start_at, e AS end_at, amount,
       CAST(amount * 100 AS BIGINT) AS cents, date_diff('second', s, e) AS secs, CAST(s AS DATE) AS rental_date
FROM parsed
WHERE coalesce(rental_id, '') <> '' AND coalesce(user_id, '') <> '' AND coalesce(vehicle_id, '') <> ''
  AND coalesce(st, '') <> '' AND coalesce(et, '') <> '' AND coalesce(pickup_location, '') <> ''
  AND coalesce(amount_text, '') <> '' AND copies = 1 AND s IS NOT NULL AND e IS NOT NULL AND e >= s
  AND amount IS NOT NULL AND amount >= 0
  AND user_id IN (SELECT user_id FROM users)
  AND vehicle_id IN (SELECT trim(vehicle_id) FROM vehicles)
  AND pickup_location IN (SELECT trim(location_id) FROM locations);
"""

MEAN = "CAST((sum(cents) * 2 + count(*)) // (count(*) * 2) AS DECIMAL(20, 0)) / 100"

TABLES = {
    "location_performance": f"""
      WITH w AS (SELECT date_diff('second', min(start_at), max(end_at)) / 3600.0 AS hours FROM valid)
      SELECT v.pickup_location, any_value(trim(l.location_name)), any_value(trim(l.city)),
             any_value(trim(l.state)), sum(amount), count(*), {MEAN}, max(amount), min(amount),
             count(DISTINCT vehicle_id), sum(secs) / 3600.0,
             round(sum(secs) / 3600.0 / (count(DISTINCT vehicle_id) * any_value(w.hours)), 4)
      FROM valid v CROSS JOIN w LEFT JOIN locations l ON trim(l.location_id) = v.pickup_location
      GROUP BY v.pickup_location""",
    "user_metrics": f"""
      SELECT v.user_id, any_value(u.first_name), any_value(u.last_name), any_value(u.email), sum(amount),
             count(*), {MEAN}, max(amount), min(amount), sum(secs) / 3600.0, sum(secs) / 3600.0 / count(*),
             min(start_at), max(start_at)
      FROM valid v LEFT JOIN users u USING (user_id) GROUP BY v.user_id""",
    "vehicle_type_performance": f"""
      SELECT trim(x.vehicle_type), count(*), sum(amount), {MEAN}, sum(secs) / 3600.0 / count(*),
             max(secs) / 3600.0, min(secs) / 3600.0, count(DISTINCT v.vehicle_id)
      FROM valid v LEFT JOIN vehicles x ON trim(x.vehicle_id) = v.vehicle_id GROUP BY trim(x.vehicle_type)""",
    "daily_metrics": f"""
      SELECT rental_date, count(*), sum(amount), {MEAN}, count(DISTINCT user_id), count(DISTINCT vehicle_id)
      FROM valid GROUP BY rental_date""",
}


def reference_tables(batch_dir: Path, output_dir: Path | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """The four tables for one generated batch; with output_dir, also written as Parquet (for timing)."""
    with duckdb.connect() as connection:
        connection.execute(REFERENCE_SQL.format(batch=batch_dir.as_posix()))
        results = {}
        for name, sql in TABLES.items():
            if output_dir is not None:
                target = output_dir / f"{name}.parquet"
                output_dir.mkdir(parents=True, exist_ok=True)
                connection.execute(f"COPY ({sql}) TO '{target.as_posix()}' (FORMAT PARQUET)")
                results[name] = []
            else:
                results[name] = connection.execute(sql).fetchall()
    return results
