"""A small hand-made batch whose every expected number is worked out in the tests."""

from __future__ import annotations

LOCATIONS = """location_id,location_name,city,state
L1,Airport,Accra,GA
L2,Downtown,Kumasi,AS
"""
VEHICLES = """vehicle_id,vehicle_type,status
0e672a709e,SUV,1
5144945047,Sedan,1
04bbfa06f1,SUV,0
"""
USERS = """user_id,first_name,last_name,email,phone_number,driver_license_number,creation_date
U1,Ama,Mensah,ama@example.com,555-0101,DL1,2023-05-01
U2,Kofi,Owusu,kofi@example.com,555-0102,DL2,2022-01-15
"""
# R1..R4 are valid; R5 breaks rule 8. Durations: R1 2h, R2 10h, R3 1.5h, R4 24h.
TRANSACTIONS = """rental_id,user_id,vehicle_id,rental_start_time,rental_end_time,pickup_location,dropoff_location,total_amount
R1,U1,0e672a709e,2024-06-01 08:00:00,2024-06-01 10:00:00,L1,L2,100.00
R2,U1,5144945047,2024-06-01T09:00:00,2024-06-01T19:00:00,L1,L1,50.005
R3,U2,0e672a709e,2024-06-02 12:00,2024-06-02 13:30,L2,,30
R4,U2,04bbfa06f1,2024-06-02 00:00:00,2024-06-03 00:00:00,L1,L1,20.01
R5,U2,04bbfa06f1,2024-06-02 00:00:00,2024-06-03 00:00:00,L9,L1,20.00
"""

# What Athena writes for each insight query over a batch like this one: quoted CSV with a header.
ATHENA_CSV = {
    "top_revenue_locations": '"location_id","location_name","city","state","total_revenue","transaction_count"\n'
    '"L1","Airport","Accra","GA","150.01","2"\n"L2","Downtown","Kumasi","AS","30.00","1"\n',
    "most_rented_vehicle_types": '"vehicle_type","rental_count","total_revenue","unique_vehicles"\n"SUV","3","150.01","2"\n',
    "top_spending_users": '"user_id","first_name","last_name","total_spent","rental_count"\n"U1","Ama","Mensah","150.01","2"\n',
    "daily_revenue_trend": '"rental_date","total_revenue","transaction_count"\n"2024-06-01","150.01","2"\n',
    "location_utilization": '"location_id","location_name","utilization_rate","total_rental_hours","unique_vehicles"\n'
    '"L1","Airport","0.0476","12.0","2"\n',
}


def files() -> dict[str, str]:
    return {
        "locations": LOCATIONS,
        "vehicles": VEHICLES,
        "users": USERS,
        "rental_transactions": TRANSACTIONS,
    }
