-- The 10 locations with the highest total revenue (ties: location_id ascending).
SELECT location_id, location_name, city, state, total_revenue, transaction_count
FROM location_performance
ORDER BY total_revenue DESC, location_id ASC
LIMIT 10
