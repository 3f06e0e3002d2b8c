"""What the tests share: servers, the DynamoDB emulator, the flag factory and helpers.

Test modules import from here and from nowhere else in tests/ (tests/unit/test_test_layout.py).
"""
