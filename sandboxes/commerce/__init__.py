"""Adobe Commerce (Magento 2.4) admin REST sandbox served on loopback for tests and benchmarks."""
