-- Average listing price per location, over the current versions of the apartments.
INSERT INTO analytics.kpi_average_listing_price (location_name, current_listings, average_price)
SELECT l.location_name, COUNT(*) AS current_listings, CAST(ROUND(AVG(a.current_price), 2) AS DECIMAL(12,2)) AS average_price
FROM analytics.dim_apartments a
JOIN analytics.dim_locations l ON l.location_key = a.location_key
WHERE a.is_current
GROUP BY l.location_name
