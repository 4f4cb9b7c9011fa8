"""ROS 2 without a ROS install: rtseg's results as ROS 2 messages (CDR, official type names and
hashes, through ``rosbags``' type store), recorded as MCAP bags (:mod:`rtseg.ros2.bag`).

Matched: ROS 2 Jazzy (its message definitions as ``rosbags`` ships them) and
``vision_msgs`` 4.1.1 (the fields in ``msg/vision_msgs``). Needs the ``robot`` extra.
"""
