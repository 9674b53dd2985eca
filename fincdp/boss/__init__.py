"""The boss model: seniority from titles, org charts, buying committees and the boss score (docs/boss.md)."""
