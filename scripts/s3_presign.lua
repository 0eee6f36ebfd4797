-- Hands out a download link: checks that the object exists (HeadObject), then
-- returns a presigned GET URL for it, valid 5 minutes, that any HTTP client can
-- fetch without credentials. The bucket is BUCKET_NAME.
--
-- `aws.presign` signs a URL with the function's credentials (SigV4 in the query
-- string, as boto3's generate_presigned_url does). The URL is S3's
-- virtual-hosted one, or path-style under AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL
-- when one is set (a local stand-in). A missing object is the typed error
-- ObjectNotFound.

local M = {}

local s3 = aws.client("s3")
local BUCKET = os.getenv("BUCKET_NAME") or "my-bucket"
local EXPIRES = 300

-- Each segment of the key percent-encoded, its slashes kept.
local function encode_key(key)
  return (key:gsub("[^/]+", function(segment) return url.encode(segment) end))
end

local function object_url(key)
  local endpoint = os.getenv("AWS_ENDPOINT_URL_S3") or os.getenv("AWS_ENDPOINT_URL")
  if endpoint then
    return endpoint:gsub("/$", "") .. "/" .. BUCKET .. "/" .. encode_key(key)
  end
  return "https://" .. BUCKET .. ".s3." .. os.getenv("AWS_REGION") .. ".amazonaws.com/" .. encode_key(key)
end

function M.handler(event, context)
  local ok, head = pcall(s3.HeadObject, s3, { Bucket = BUCKET, Key = event.key })
  if not ok then
    ---@cast head -string, +aws.Error
    if head.errorType == "NotFound" then
      error({ errorType = "ObjectNotFound", errorMessage = "no object " .. event.key })
    end
    error(head)
  end
  return {
    url = aws.presign({ url = object_url(event.key), service = "s3", expires = EXPIRES }),
    expires_in = EXPIRES,
    size = head.ContentLength,
    content_type = head.ContentType,
  }
end

return M
