import EventStreamKit

print("EventStreamDemo")
