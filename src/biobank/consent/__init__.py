"""Dynamic electronic consent coded with GA4GH DUO: forms, donor records, the matcher, eligibility, withdrawal."""
