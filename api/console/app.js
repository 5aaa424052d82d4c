// The console's script (being written).
