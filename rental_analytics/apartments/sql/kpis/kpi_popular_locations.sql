-- The most popular locations: bookings per location, most booked first (ties share a rank).
INSERT INTO analytics.kpi_popular_locations (location_name, bookings, popularity_rank)
SELECT l.location_name, COUNT(*) AS bookings, RANK() OVER (ORDER BY COUNT(*) DESC) AS popularity_rank
FROM analytics.fact_bookings b
JOIN analytics.dim_apartments a ON a.apartment_key = b.apartment_key
JOIN analytics.dim_locations l ON l.location_key = a.location_key
GROUP BY l.location_name
