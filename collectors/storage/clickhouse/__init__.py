"""The store on ClickHouse: a server through clickhouse-connect, or the same engine in-process through chdb."""
