-- ARGV: node, trunk, count. This host holds `count` channels on `trunk` now.
write(ARGV[1], ARGV[2], tonumber(ARGV[3]))
return 1
