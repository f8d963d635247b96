"""Access requests and their life: eligibility, ethics review, provider decisions, agreements (MTA/DTA),
fulfilment (reservations, shipments, time-bounded data grants), returned results. Each step that the
consortium must know is enqueued for the chain through `ledger.outbox.enqueue`."""
