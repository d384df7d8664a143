print("hvguestd")
