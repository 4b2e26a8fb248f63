"""Per-seat billing with Stripe: a 14-day trial, then a monthly or yearly plan whose quantity follows
the workspace's seats. Off (seats unlimited) when no Stripe key is configured. See docs/BILLING.md."""
