-- Calls an HTTPS API and shapes its answer: the GitHub REST API's repository,
-- cut down to what a caller needs.
--
-- `http.get` returns every status as a response (as fetch does), so the handler
-- decides what a 404 means; a failure to get any response (DNS, TLS, timeout)
-- raises an `Http.*` error, which becomes the invocation's error unless caught.
-- API_BASE_URL points it elsewhere (GitHub Enterprise, a test server); without
-- it, it calls https://api.github.com.

local M = {}

local base = os.getenv("API_BASE_URL") or "https://api.github.com"

function M.handler(event, context)
  local res = http.get(base .. "/repos/" .. url.encode(event.owner) .. "/" .. url.encode(event.repo), {
    headers = {
      accept = "application/vnd.github+json",
      ["x-github-api-version"] = "2022-11-28",
    },
    timeout = 5,
  })
  if res.status == 404 then
    error({
      errorType = "RepositoryNotFound",
      errorMessage = "no repository " .. event.owner .. "/" .. event.repo,
    })
  elseif res.status ~= 200 then
    error({
      errorType = "UpstreamError",
      errorMessage = "GitHub answered " .. res.status,
    })
  end
  local repo = res:json()
  return {
    name = repo.full_name,
    description = repo.description,
    stars = repo.stargazers_count,
    forks = repo.forks_count,
    language = repo.language,
    url = repo.html_url,
  }
end

return M
