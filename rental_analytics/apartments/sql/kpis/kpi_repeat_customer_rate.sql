-- Repeat customers: users with a booking that starts within 30 days of an earlier one, over users with bookings.
INSERT INTO analytics.kpi_repeat_customer_rate (customers, repeat_customers, repeat_customer_rate)
WITH ordered AS (
    SELECT user_key, booking_date, LAG(booking_date) OVER (PARTITION BY user_key ORDER BY booking_date, booking_key) AS previous_date
    FROM analytics.fact_bookings
),
per_user AS (
    SELECT user_key, MAX(CASE WHEN previous_date IS NOT NULL AND DAYS_BETWEEN(previous_date, booking_date) <= 30 THEN 1 ELSE 0 END) AS repeats
    FROM ordered
    GROUP BY user_key
)
SELECT COUNT(*) AS customers, COALESCE(SUM(repeats), 0) AS repeat_customers,
       CASE WHEN COUNT(*) = 0 THEN NULL ELSE CAST(SUM(repeats) AS DOUBLE PRECISION) / COUNT(*) END AS repeat_customer_rate
FROM per_user
