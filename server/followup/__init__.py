"""Follow-up messaging: purchase-intent events into journeys and campaigns, delivered on channels."""
