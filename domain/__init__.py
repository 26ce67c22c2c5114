"""The pure core of Holdfast: accounts, holds, policy, invoice facts. No I/O, no clock."""
