-- ARGV: node, trunk... Gives up each trunk's registration if node holds it.
local node = ARGV[1]
for i = 2, #ARGV do
  resign(node, ARGV[i])
end
return 1
