"""Several monitors: leader election, roles, the follower, other vantages."""
