print("hvguestctl")
