-- ARGV: node, trunk... A planned shutdown: the host's registrations (still held), its
-- channels and its lease go at once.
local node = ARGV[1]
for i = 2, #ARGV do
  resign(node, ARGV[i])
end
prune(node)
return 1
