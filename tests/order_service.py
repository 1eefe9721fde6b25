"""A payload-building service for tests: what `service = "order_service:load_order"` names."""

ORDERS = {
    7: {"increment_id": "CK00000007", "customer_email": "roni_cost@example.com", "grand_total": 12.5},
}


def load_order(order_id: int) -> dict:
    """Publishers send ids; consumers resolve the full entity (the module's service class)."""
    return {"order_id": order_id, **ORDERS[order_id]}
