---@meta log

---Function logs at Lambda's levels, built in (also `require "log"`).
---
---Arguments are joined with tabs: strings as they are, tables as JSON, anything
---else through `tostring`. With two or more arguments, a final table with
---string keys is a set of fields: in JSON log format (`AWS_LAMBDA_LOG_FORMAT=JSON`)
---they are merged into the log record, in text format they follow the message as
---JSON after a tab. A lone table is the message itself (embedded as JSON).
---
---Text format (as Node's runtime writes it): `TIMESTAMP\tREQUEST_ID\tLEVEL\tmessage`.
---JSON format: `{"timestamp":...,"level":"INFO","requestId":...,"message":...,<fields>}`.
---
---`AWS_LAMBDA_LOG_LEVEL` drops records below the level it names (JSON format:
---INFO unless set; text format: every level unless set). `print(...)` also logs,
---at INFO.
---
---Example: `log.info("order stored", {order_id = id, items = n})`.
---@class loglib
log = {}

---Logs at TRACE level.
---@param ... any message parts; with two or more, a final table is a set of fields
function log.trace(...) end

---Logs at DEBUG level.
---@param ... any message parts; with two or more, a final table is a set of fields
function log.debug(...) end

---Logs at INFO level.
---@param ... any message parts; with two or more, a final table is a set of fields
function log.info(...) end

---Logs at WARN level.
---@param ... any message parts; with two or more, a final table is a set of fields
function log.warn(...) end

---Logs at ERROR level.
---@param ... any message parts; with two or more, a final table is a set of fields
function log.error(...) end

---Logs at FATAL level.
---@param ... any message parts; with two or more, a final table is a set of fields
function log.fatal(...) end

return log
