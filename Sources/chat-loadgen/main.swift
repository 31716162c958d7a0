print("chat-loadgen: not built yet")
