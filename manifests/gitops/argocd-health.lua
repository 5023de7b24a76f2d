-- Argo CD health check for finetune.dev/FineTuningJob: maps the job's phase to an Argo CD health status,
-- with the operator's status message so the Argo CD UI says why (e.g. "OOMKilled: raise resources.memory").
-- Terminal phases decide the application's health; every other phase, and a job the operator has not seen
-- yet (no status), is still on its way.
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the finetune-operator to accept the job"
  return hs
end

local phase = status.phase
if phase == "Completed" then
  hs.status = "Healthy"
elseif phase == "Failed" then
  hs.status = "Degraded"
elseif phase == "Cancelled" then
  hs.status = "Suspended"
else
  -- Pending, Queued, Running, Evaluating, and any phase a newer operator may add.
  hs.status = "Progressing"
end

local detail = status.message
if detail == nil or detail == "" then
  detail = status.reason
end
if detail ~= nil and detail ~= "" then
  hs.message = phase .. ": " .. detail
else
  hs.message = phase
end
return hs
