print("chat: not built yet")
