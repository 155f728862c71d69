"""Trading bots driven by price updates: strategies, five-stage risk filter, workers sharing bots without overlap."""
