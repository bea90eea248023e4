"""The conferencing service: one WebSocket channel per meeting, and an SFrame relay.

It sees who is in which meeting, sizes and times, and nothing else: board messages are
signed by devices and session keys travel sealed; media frames are SFrame ciphertexts.
"""
