"""The shop's services, one small module each; ``sample_system.shop`` runs them together."""
