-- Revenue and rentals per day, in date order.
SELECT rental_date, total_revenue, transaction_count
FROM daily_metrics
ORDER BY rental_date ASC
