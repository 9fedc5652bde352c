"""The security office's console, `officeguard monitor`: the board of every site (`model`, pure),
its MQTT subscriber (`net`), its terminal view (`view`) and the command (`monitor`).
"""
